#pragma once

namespace wachat::infra {

// Lowers the calling thread's CPU priority to nice 10 (Linux keeps one per thread), so that
// bulk background work (media downloads) yields to message processing on a busy machine and
// takes idle time otherwise. Best effort: a failure changes nothing.
void lower_this_thread_priority();

}  // namespace wachat::infra
