#!/usr/bin/python
"""Ansible module kpy_registry_images: build kpy's images offline and push the ones a registry lacks."""

DOCUMENTATION = r"""
---
module: kpy_registry_images
short_description: Build kpy's images (busybox, pause) from Debian packages and push them into a registry
description:
  - Runs on the controller with a Python that can import kpy_components (the repository's virtual environment).
  - Fetches the Debian packages into I(cache_dir)/debs once (apt-get download), builds each image of
    kpy_components.images.catalog as a deterministic OCI layout in I(cache_dir)/layouts/NAME (same packages, same
    digests), then for each tag asks the registry for the digest it holds and pushes with skopeo only when it
    differs.
  - Changed only when a layout was written or a tag was pushed. Check mode writes and pushes nothing and reports
    what would change.
options:
  cache_dir:
    description: The controller's cache of packages and layouts.
    type: path
    required: true
  registry:
    description: The registry as host:port (plain HTTP); omit to only build.
    type: str
"""

EXAMPLES = r"""
- name: Build and push
  kpy_registry_images:
    cache_dir: ~/.cache/kpy/images
    registry: 10.213.0.11:5000
  delegate_to: localhost
"""

RETURN = r"""
images:
  description: One entry per image - name, references (as manifests name them), digest, tags, layout, archive
    (the image as one tar for ctr images import), package.
  returned: always
  type: list
  elements: dict
pushed:
  description: repository:tag of each tag pushed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
"""

import sys
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={"cache_dir": {"type": "path", "required": True}, "registry": {"type": "str"}},
        supports_check_mode=True,
    )
    try:
        from kpy_components.images import ImageError, build, publish
    except ImportError as exc:
        module.fail_json(msg=f"kpy_components is not importable by {sys.executable}: run this module "
                             f"with the repository's virtual environment ({exc})")
    cache, registry = Path(module.params["cache_dir"]), module.params["registry"]
    try:
        images = build.build_all(cache, dry_run=module.check_mode)
        pushed = publish.publish(images, registry, check_only=module.check_mode) if registry else []
    except ImageError as exc:
        module.fail_json(msg=str(exc))
    built = [change for image in images for change in image.changes]
    module.exit_json(
        changed=bool(built or pushed),
        images=[{"name": image.name, "references": list(image.references), "digest": image.digest,
                 "tags": list(image.tags), "layout": str(image.layout), "archive": str(image.archive),
                 "package": image.package}
                for image in images],
        pushed=pushed,
        built=built,
    )


if __name__ == "__main__":
    main()
