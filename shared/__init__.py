"""Code shipped to every Lambda: models, settings, job lifecycle, repository, providers, delivery."""
