# The compiled HTTP/2 client connection: included into _compiled.pyx (one extension module).
