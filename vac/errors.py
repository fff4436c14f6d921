"""The VacError exception tree. Adapters raise these; core returns values or raises ConfigError."""


class VacError(Exception):
    """Base of every error vac raises on purpose."""


class ConfigError(VacError):
    """The configuration (or a pipe) is invalid; carries every problem found.

    ``fallback``: when the files could be read, the Config made of their valid parts
    (defaults in place of invalid [settings] values, faulty machinetypes disabled). vacd
    uses it to keep serving running machines, never to create new ones.
    """

    def __init__(self, problems, fallback=None):
        self.problems = list(problems) if not isinstance(problems, str) else [problems]
        self.fallback = fallback
        super().__init__("\n".join(str(p) for p in self.problems))


class ProtocolError(VacError):
    """A VacQuery datagram or HTTP request is malformed."""


class HypervisorError(VacError):
    """libvirt failed or is unreachable."""


class StorageError(VacError):
    """LVM, disk files or image overlays failed."""


class CommandError(VacError):
    """An external command failed; carries argv, return code and stderr."""

    def __init__(self, argv, returncode, stderr="", stdout=""):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        tail = (stderr or "").strip().splitlines()
        detail = tail[-1] if tail else ""
        super().__init__(f"{' '.join(self.argv)} exited with {returncode}"
                         + (f": {detail}" if detail else ""))


class StateError(VacError):
    """State files under the state directory cannot be read or written."""


class FetchError(VacError):
    """An HTTP(S) fetch (pipe, user_data template, image) failed."""


class ImageError(VacError):
    """A root image cannot be fetched, cached or verified."""


class CredentialError(VacError):
    """An X.509 certificate, key or proxy cannot be used."""
