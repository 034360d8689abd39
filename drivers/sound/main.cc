#include "drivers/sound/sound_driver.h"

UMBRA_DRIVER_MAIN(umbra::drivers::SoundDriver)
