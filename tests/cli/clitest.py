"""What the command-line test scripts share: running the `demix` binary named on their command
line, and a TestCase with a scratch folder whose assertFails checks that a failing command exits
with the expected code, says why, and leaves neither its output nor a temporary behind.

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

    def assertFails(self, args, code, *fragments, output=None):
        rc, out, err = run(*args)
        self.assertEqual(rc, code, f"{args}: rc={rc}\nstdout={out}\nstderr={err}")
        for f in fragments:
            self.assertIn(f, err, f"{args}: stderr lacks {f!r}: {err}")
        if output is not None:
            self.assertFalse(os.path.exists(output), f"{args} left {output}")
        leftovers = [f for f in os.listdir(self.dir) if ".tmp-" in f]
        self.assertEqual(leftovers, [], f"{args} left temporaries")
        return err


def main(timeout=120, verbosity=2):
    """Runs the calling script's tests against the binary given as its first argument."""
    global DEMIX, TIMEOUT
    DEMIX = os.path.abspath(sys.argv.pop(1))
    TIMEOUT = timeout
    unittest.main(module="__main__", verbosity=verbosity)
