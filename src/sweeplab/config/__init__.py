"""What a user writes: the composed config's schemas, its checks, and --help."""
