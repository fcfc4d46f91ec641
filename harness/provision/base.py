"""What every component is: where it was found, how it looks and installs itself, and the lock
that serialises installs into the cache."""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import SetupError
from harness.paths import cache_dir
from harness.provision.commands import apt_install, can_apt_install


@dataclass(frozen=True)
class Installed:
    """Where a component was found: ``path`` is its binary or its jar directory."""

    name: str
    path: str
    version: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


Log = Callable[[str], None]


def setup_log() -> Path:
    return cache_dir() / "setup.log"


@contextmanager
def cache_lock() -> Iterator[None]:
    """Serialise installs into the cache between concurrent setups (parallel CI jobs)."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Component:
    name: str = ""
    debian_packages: list[str] = []

    def locate(self) -> Installed | None:
        raise NotImplementedError

    def install(self, log: Log) -> Installed:
        raise NotImplementedError

    def how_to_install(self) -> str:
        raise NotImplementedError

    def _install_debian(self, log: Log) -> Installed:
        if not can_apt_install():
            raise SetupError(f"{self.name} is not installed and Faultline cannot install it "
                             f"without root: {self.how_to_install()}")
        log(f"installing {' '.join(self.debian_packages)} from Debian's packages")
        apt_install(self.debian_packages, setup_log(), what=f"installing {self.name}")
        found = self.locate()
        if found is None:
            raise SetupError(f"{self.name}: installed {self.debian_packages} but still cannot "
                             f"find it; {self.how_to_install()}")
        return found




def maven() -> str:
    """Maven, installed through apt-get first when missing and possible."""
    mvn = shutil.which("mvn")
    if mvn is None:
        if not can_apt_install():
            raise SetupError("Maven (mvn) is needed to fetch jars from Maven Central; install it "
                             "(Debian: `apt-get install maven`)")
        apt_install(["maven"], setup_log(), what="installing maven")
        mvn = shutil.which("mvn") or "mvn"
    return mvn


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A staging directory in the cache, renamed to ``target`` when the block ends without error
    (what was there before replaced), removed otherwise: a cache entry is all there or absent."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=cache_dir()))
    try:
        yield staging
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
