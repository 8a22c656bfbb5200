"""Command-line tools; each is a module with main(argv) -> int, tested in-process."""


def optional_model_and_input(parser, paths, model_name: str):
    """`[MODEL] INPUT` positionals (nargs="+") -> (model or None, input); more than two is a usage error."""
    if len(paths) > 2:
        parser.error(f"give at most {model_name} and INPUT")
    return (paths[0] if len(paths) == 2 else None), paths[-1]
