from grader.entry import cks

cks()
