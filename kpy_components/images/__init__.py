"""Container images built offline from Debian packages, with no container engine: kpy's busybox and pause images.

`oci.py` writes deterministic OCI image layouts (same inputs, same digests); `debs.py` fetches and reads the Debian
packages they are made of; `catalog.py` says what goes into each image; `build.py` builds them all into a cache;
`publish.py` pushes them into a registry (skopeo), only what the registry does not already hold.
"""


class ImageError(Exception):
    """Building or publishing an image failed; the message is meant for the user as it is."""
