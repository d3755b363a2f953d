"""dpy_gather: what templates/context/gather.py runs inside a source image, with that
image's own interpreter (CPython 3.9 to 3.15, glibc or musl, /usr/local or /usr).

  main     the command line: gather CONFIG OUT, or --graft STAGE BUILD_ROOT
  gather   the gather stage (Gatherer): layout.json, root/, stubs/, manifest.json
  graft    the helpers' graft (chroot-pip, chroot-uv): libraries that new extension
           modules need, from the builder
  debug    the debug variant's tools (debug/)
  probe    the interpreter's, the OS's and the loader's own answers
  elf      the ELF reader (Elf)
  root     copying into the output root, symlinks and all (Root)
  compile  byte-compiling the stdlib; also run by dpy's compile-once step
  pkgdb    dpkg and apk package records
  realpaths  os.path.realpath for thousands of paths at once (RealPaths)
  report   DPY-ERROR and DPY-WARN lines for dpy

Pure standard library, Python 3.9 syntax. Importing the package imports none of its
modules, so the compile-once step needs only this file and compile.py.
"""
