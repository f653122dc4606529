"""SIP parsing, sans-I/O: bytes in, frozen objects out."""
