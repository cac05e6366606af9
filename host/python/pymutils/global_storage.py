"""The original's global flags that verifiers read; `shutdown` turns true when pymanager
shuts down during a verification."""


class Globals:
    shutdown = False
    in_force_quit = False
    may_terminate = False
    keep_alive = False
    terminate_time_allowed = 10
    status = "launching processes"
    default_shell = True
    verbose = 0
    outfile = None
    messages = []
