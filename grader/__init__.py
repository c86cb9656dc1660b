"""CKS runtime-security lab kit: labs, engines and a grader that checks meaning, not text."""

__version__ = "0.1.0"
