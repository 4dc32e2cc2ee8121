"""`kpy-controller-manager`: run the controllers, one active replica at a time (leader election on the
kube-system/kube-controller-manager Lease).

    kpy-controller-manager --kubeconfig /etc/kpy/controller-manager.kubeconfig [--config FILE] [--leader-elect]
                           [--secure-port 10257] [--controllers '*,-foo'] [--cluster-cidr CIDR ...]
"""
from __future__ import annotations

import sys

from kpy_components.component import runner

from . import config, manager

COMPONENT = runner.Component(
    name="kpy-controller-manager", default_port=10257, lease_name=config.LEASE_NAME,
    description="Run the Kubernetes controllers (kube-controller-manager).",
    load_config=config.load, run=manager.run, add_flags=config.add_flags)


def main(argv: list[str] | None = None) -> int:
    return runner.main(COMPONENT, argv)


if __name__ == "__main__":
    sys.exit(main())
