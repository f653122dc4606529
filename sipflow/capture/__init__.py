"""Reading captures: the only part of sipflow that opens files."""
