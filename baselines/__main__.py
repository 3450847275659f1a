"""`python -m baselines`: list the registered methods and their hyperparameters."""

import baselines


def main():
    for name in baselines.names():
        method = baselines.get(name)
        settings = ", ".join(f"{key}={value}" for key, value in method.hyperparameters.items()) or "-"
        print(f"{name:11s} {method.kind:8s} {settings}\n            {method.summary}")


if __name__ == "__main__":
    main()
