"""Benchmarks (not tests): each writes its figures to bench/results/."""


def machine_line(name: str) -> str:
    """``# NAME on HOST (ARCH, N CPUs, Python X), DATE`` heading of a results file."""
    import os
    import platform
    import time
    return (f"# {name} on {platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}), "
            f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}")


def write_results(path: str, lines) -> int:
    """Print the lines and write them to ``path`` (bench/results/...); returns 0."""
    import os
    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return 0
