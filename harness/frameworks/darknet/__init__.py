"""Darknet YOLOv3: the backend, the one cfg parser (``cfg.py``), the CLI driver, libdarknet and OpenCV paths."""

FORKS = ("pjreddie", "alexeyab")  # pjreddie: the paper's Darknet (default); alexeyab: the maintained fork
DEFAULT_FORK = "pjreddie"


def check_fork(fork: str) -> str:
    """``fork`` when it names a Darknet the harness drives, else ValueError naming the known ones."""
    if fork not in FORKS:
        raise ValueError(f"unknown Darknet {fork!r}; known: {', '.join(FORKS)}")
    return fork
