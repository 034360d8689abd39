#include "drivers/echo/echo_driver.h"

UMBRA_DRIVER_MAIN(umbra::drivers::EchoDriver)
