#include "drivers/nic/nic_driver.h"

UMBRA_DRIVER_MAIN(umbra::drivers::NicDriver)
