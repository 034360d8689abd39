#include "drivers/disk/disk_driver.h"

UMBRA_DRIVER_MAIN(umbra::drivers::disk::DiskDriver)
