"""`python -m baselines`: list the registered methods, their hyperparameters, how their outputs become codes and their
training recipes."""

from saeh import registry


def main():
    for name in registry.names():
        method = registry.get(name)
        settings = ", ".join(f"{key}={value}" for key, value in method.hyperparameters.items()) or "-"
        if method.kind == "deep":
            hooks = [hook for hook in ("prepare", "state", "callbacks", "sampler", "database_codes", "inputs")
                     if getattr(method, hook) is not None]
            extra = f"; codes: {method.code.activation} > {method.code.threshold:g}" + (
                f"; hooks: {', '.join(hooks)}" if hooks else "") + ("" if method.multi_label else "; single-label only")
            extra += f"\n                 recipe {method.recipe.summary()}\n                 source: {method.recipe.source}"
        else:
            extra = ""
        print(f"{name:16s} {method.kind:8s} {settings}{extra}\n                 {method.summary}")


if __name__ == "__main__":
    main()
