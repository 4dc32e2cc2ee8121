"""Action kpy_registry_images: build kpy's images (busybox, pause) from Debian packages and push the ones a registry
lacks, on the controller and in-process (a module run cost ~0.5 s of every site.yml run for AnsiballZ and imports).

Arguments: `cache_dir` (the controller's cache of packages and layouts) and `registry` (host:port, plain HTTP;
omitted: only build). Fetches the packages into cache_dir/debs once (apt-get download), builds each image of
kpy_components.images.catalog as a deterministic OCI layout in cache_dir/layouts/NAME (same packages, same digests),
then for each tag asks the registry for the digest it holds and pushes only when it differs. Changed only when a
layout was written or a tag pushed; check mode writes and pushes nothing and reports what would change.
Returns `images` (name, references, digest, tags, layout, archive - the image as one tar for ctr images import -,
package), `pushed` (repository:tag of each tag pushed) and `built` (what was written).
"""
from __future__ import annotations

from pathlib import Path

from ansible.plugins.action import ActionBase

from kpy_components.images import ImageError, build, publish


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec={"cache_dir": {"type": "path", "required": True},
                                                             "registry": {"type": "str"}})
        check = bool(self._task.check_mode)
        try:
            images = build.build_all(Path(args["cache_dir"]), dry_run=check)
            pushed = publish.publish(images, str(args["registry"]), check_only=check) if args["registry"] else []
        except ImageError as exc:
            return {**result, "failed": True, "msg": str(exc)}
        built = [change for image in images for change in image.changes]
        return {
            **result,
            "changed": bool(built or pushed),
            "images": [{"name": image.name, "references": list(image.references), "digest": image.digest,
                        "tags": list(image.tags), "layout": str(image.layout), "archive": str(image.archive),
                        "package": image.package} for image in images],
            "pushed": pushed,
            "built": built,
        }
