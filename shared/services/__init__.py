"""The business steps each function runs: submit, track, poll, callbacks, cancel, archive, notify, deliver."""
