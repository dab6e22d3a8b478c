"""The test project's job: sleeps, prints its parameters, fails with exit code 3 when asked.

With ECHO_RELEASE set to a path, the sleep ends early once that file exists: a test holds its runs
running for as long as it needs, then lets them finish at once (the parameters, and so the config
hash, stay the same)."""

import argparse
import os
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--seed", type=int)
p.add_argument("--sleep", type=float)
p.add_argument("--fail")
p.add_argument("--threads", type=int)
a = p.parse_args()
release = os.environ.get("ECHO_RELEASE")
deadline = time.monotonic() + a.sleep
while time.monotonic() < deadline and not (release and os.path.exists(release)):
    time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
print(f"seed={a.seed} threads={a.threads} python={sys.executable} HYDRA_FULL_ERROR={os.environ.get('HYDRA_FULL_ERROR')}")
sys.exit(3 if a.fail == "true" else 0)
