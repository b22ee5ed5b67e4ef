# An uncaught exception after output on both streams: exit 1 and a traceback on stderr.
import sys
print("before the error")
print("a warning", file=sys.stderr)
sys.stdout.flush()
{}["missing key"]
