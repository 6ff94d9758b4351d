"""One workflow function per user task; the CLI subcommands are thin wrappers over them."""
