"""Fields of ObjectMeta (``metadata:``) at the pinned Kubernetes release, shared by the engines that decode
objects as the API server does (a policy file's metadata, a pod's)."""

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
