#pragma once
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace wachat::infra {

using log_field = std::pair<std::string_view, std::string_view>;

// One structured line to stderr: `ts=... level=info event=listen key=value ...`.
// Values with spaces or quotes are quoted. Never pass a secret here.
void log_info(std::string_view event, std::initializer_list<log_field> fields = {});
void log_warn(std::string_view event, std::initializer_list<log_field> fields = {});
void log_error(std::string_view event, std::initializer_list<log_field> fields = {});

// Renders the fields as the logger would (exposed for tests).
std::string format_log_line(std::string_view level, std::string_view event,
                            std::initializer_list<log_field> fields);

}  // namespace wachat::infra
