"""What the command-line test scripts share: running the `demix` binary named on their command
line, and a TestCase with a scratch folder whose assertFails checks that a failing command exits
with the expected code, says why, and leaves neither its outputs nor a temporary behind.

CTest runs each script by its path, so this folder is on sys.path and `import clitest` works from
any build directory. A script ends with `clitest.main()`, which takes the binary from argv[1].
"""
import os
import subprocess
import sys
import tempfile
import unittest

DEMIX = None    # absolute path of the binary under test, set by main()
TIMEOUT = 120   # seconds one command may take, set by main()


def run(*args):
    """(exit code, stdout, stderr) of `demix ARGS`."""
    p = subprocess.run([DEMIX, *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT)
    return p.returncode, p.stdout, p.stderr


class CliTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def assertFails(self, args, code, *fragments, output=None, outputs=()):
        """`demix ARGS` exits with `code`, its stderr holds every fragment, the file `output` and
        the files `outputs` do not exist, and no temporary is left anywhere in the scratch folder.
        Returns stderr."""
        rc, out, err = run(*args)
        self.assertEqual(rc, code, f"{args}: rc={rc}\nstdout={out}\nstderr={err}")
        for f in fragments:
            self.assertIn(f, err, f"{args}: stderr lacks {f!r}: {err}")
        for o in ([output] if output is not None else []) + list(outputs):
            self.assertFalse(os.path.exists(o), f"{args} left {o}")
        self.assertNoTemporaries(args)
        return err

    def assertNoTemporaries(self, what=""):
        """No temporary file (demix's ".demix-tmp_*") anywhere in the scratch folder."""
        leftovers = [f for _, _, files in os.walk(self.dir) for f in files
                     if f.startswith(".demix-tmp_") or ".tmp-" in f]
        self.assertEqual(leftovers, [], f"{what} left temporaries")


def main(timeout=120, verbosity=2):
    """Runs the calling script's tests against the binary given as its first argument."""
    global DEMIX, TIMEOUT
    DEMIX = os.path.abspath(sys.argv.pop(1))
    TIMEOUT = timeout
    unittest.main(module="__main__", verbosity=verbosity)
