# HPACK (RFC 7541) in compiled code: included into _compiled.pyx (one extension module).
