"""vac.adapters.atomicfile.replace_file: the file gets its mode whatever the umask (made
with it at once when the umask leaves it whole, else fchmod), and no temporary stays."""

import os

from vac.adapters import atomicfile


def test_replace_file_gives_its_mode_under_any_umask(tmp_path):
    old = os.umask(0o077)
    try:
        for umask, name in ((0o077, "strict"), (0o022, "usual")):
            os.umask(umask)
            atomicfile.process_umask.cache_clear()   # read again under this umask
            assert atomicfile.process_umask() == umask
            path = str(tmp_path / name)
            atomicfile.replace_file(path, b"data", mode=0o644, fsync=False)
            assert os.stat(path).st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
        atomicfile.process_umask.cache_clear()
    assert sorted(os.listdir(tmp_path)) == ["strict", "usual"]
