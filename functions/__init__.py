"""One Lambda function per folder; each handler is thin and calls into `shared`."""
