"""Application services: the code between HTTP handlers / jobs and the models."""
