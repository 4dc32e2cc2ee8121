"""Announce the acceptable client CAs in the TLS handshake (the CertificateRequest's CA names), as kube-apiserver
does, so that clients holding several certificates pick one the server will accept.

OpenSSL sends the names only when SSL_CTX_set_client_CA_list was called, which Python's ssl module cannot say;
this calls it through the libssl that Python's own _ssl module is linked against, on the SSL_CTX behind an
ssl.SSLContext (the first member after the object header). Before writing anything it checks that the pointer
found there is that context (its verify mode, read back through OpenSSL, must be the one just set).
"""
from __future__ import annotations

import _ssl
import ctypes
import os
import ssl
import sys

_SSL_VERIFY_PEER = 0x01


def _libssl() -> ctypes.CDLL:
    lib = ctypes.CDLL(_ssl.__file__)  # dlsym on this handle also finds the libssl it links
    lib.SSL_load_client_CA_file.restype = ctypes.c_void_p
    lib.SSL_load_client_CA_file.argtypes = [ctypes.c_char_p]
    lib.SSL_add_file_cert_subjects_to_stack.restype = ctypes.c_int
    lib.SSL_add_file_cert_subjects_to_stack.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.SSL_CTX_set_client_CA_list.restype = None
    lib.SSL_CTX_set_client_CA_list.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
    lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
    return lib


def announce_client_cas(context: ssl.SSLContext, ca_file: str | os.PathLike, *more: str | os.PathLike) -> bool:
    """Make `context` (verify_mode CERT_OPTIONAL or CERT_REQUIRED) name every CA in `ca_file` (and `more` files) to
    clients. False (and nothing changed) when the SSL_CTX cannot be found safely; ValueError when a file holds no
    CA."""
    if context.verify_mode == ssl.CERT_NONE:
        raise ValueError("announce_client_cas needs a context that asks for client certificates")
    if sys.implementation.name != "cpython":  # the object layout read below is CPython's
        return False
    lib = _libssl()
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer or not lib.SSL_CTX_get_verify_mode(pointer) & _SSL_VERIFY_PEER:
        return False
    names = lib.SSL_load_client_CA_file(os.fsencode(ca_file))
    if not names:
        raise ValueError(f"{ca_file}: no CA certificate could be read for the client CA list")
    for other in more:
        if not lib.SSL_add_file_cert_subjects_to_stack(names, os.fsencode(other)):
            raise ValueError(f"{other}: no CA certificate could be read for the client CA list")
    lib.SSL_CTX_set_client_CA_list(pointer, names)  # takes ownership of the list
    return True

