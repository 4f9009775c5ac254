// Forwards to test/common/test_pki.h, where the certificates the tests make now live, for the
// tests that still include this path; remove once none does.
#pragma once

#include "test/common/test_pki.h"
