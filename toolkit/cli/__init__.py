"""Command-line tools; each is a module with main(argv) -> int, tested in-process."""
