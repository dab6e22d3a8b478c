"""A plain Hydra app using the repro launcher: `python echo_app.py -m seed=1,2`."""

import hydra


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg) -> None:
    raise AssertionError("the repro launcher never calls the task function")


if __name__ == "__main__":
    main()
