"""Build every image of the catalog into a cache: `<cache>/debs` (the packages), `<cache>/layouts/<name>` (one
OCI image layout per image, what skopeo pushes) and `<cache>/archives/<name>.tar` (the same image as one archive
naming its full references, for air-gapped nodes: `ctr -n k8s.io images import`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from kpy_components.images import catalog, debs, oci


@dataclasses.dataclass(frozen=True)
class Built:
    name: str
    layout: Path
    archive: Path
    repository: str  # path in a registry, e.g. library/busybox
    tags: tuple[str, ...]
    digest: str  # the manifest's
    references: tuple[str, ...]  # the names manifests use, e.g. docker.io/library/busybox:1.35
    package: str  # name=version of the Debian package
    changes: tuple[str, ...]  # what writing the layout changed


def build_all(cache_dir: Path, recipes=catalog.RECIPES, *, dry_run: bool = False) -> list[Built]:
    """Build each recipe's image into its layout (with dry_run: only say what would change; the packages are
    still fetched into the cache)."""
    built = []
    for recipe in recipes:
        package = debs.fetch(recipe.package, cache_dir / "debs")
        layout = cache_dir / "layouts" / recipe.name
        image = recipe.build(package, compressed_before=oci.compressed_layers(layout))
        changes = oci.write_layout(layout, image, dry_run=dry_run)
        archive = cache_dir / "archives" / f"{recipe.name}.tar"
        data = oci.archive_bytes(image, recipe.references(image))
        if not archive.is_file() or archive.read_bytes() != data:
            changes.append(f"wrote {archive.name}")
            if not dry_run:
                archive.parent.mkdir(parents=True, exist_ok=True)
                oci.replace_file(archive, data)
        built.append(Built(recipe.name, layout, archive, recipe.repository, image.tags, image.digest,
                           tuple(recipe.references(image)), f"{package.name}={package.version}", tuple(changes)))
    return built
