"""The test project's job: sleeps, prints its parameters, fails with exit code 3 when asked."""

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
time.sleep(a.sleep)
print(f"seed={a.seed} threads={a.threads} python={sys.executable} HYDRA_FULL_ERROR={os.environ.get('HYDRA_FULL_ERROR')}")
sys.exit(3 if a.fail == "true" else 0)
