#ifndef WEBHOOK_TOKEND_CSYSTEMD_SHIM_H
#define WEBHOOK_TOKEND_CSYSTEMD_SHIM_H

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#endif
