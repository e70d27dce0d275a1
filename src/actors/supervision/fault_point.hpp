#pragma once
#include <string_view>

namespace wachat::actors {

// A place where a test build can make a worker fail, to show that supervision restarts it and
// loses nothing. wachatd links an empty definition (src/faults/none.cpp); the test builds link
// src/faults/from_env.cpp, which throws at `where` when WACHAT_FAULT_INJECT asks for it.
void fault_point(std::string_view where);

}  // namespace wachat::actors
