"""Surface syntax: the Lark parser (``parser.parse_text``) and the syntax tree it builds (``ast``)."""
