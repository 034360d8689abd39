#include "drivers/uart/uart_driver.h"

UMBRA_DRIVER_MAIN(umbra::drivers::uart::UartDriver)
