#include "domain/usage.hpp"

#include <charconv>

namespace wachat::domain {
namespace {

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) {
    return false;
  }
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm): no time
// zone database, no locale.
std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

int days_in_month(int y, int m) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

}  // namespace

std::optional<std::int64_t> parse_rfc3339(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60) {
    return std::nullopt;
  }
  std::size_t at = 19;
  if (at < s.size() && s[at] == '.') {
    ++at;
    std::size_t start = at;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      ++at;
    }
    if (at == start) {
      return std::nullopt;
    }
  }
  std::int64_t offset = 0;
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, at + 1, 2, oh) || at + 3 >= s.size() || s[at + 3] != ':' || !digits(s, at + 4, 2, om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (oh * 3600 + om * 60) * (s[at] == '+' ? 1 : -1);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != s.size()) {
    return std::nullopt;
  }
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + std::min(sec, 59) - offset;
}

std::variant<usage_period, std::string> read_usage_period(const std::optional<std::string>& from,
                                                          const std::optional<std::string>& to, std::int64_t now) {
  usage_period p;
  p.to = now;
  if (to) {
    auto t = parse_rfc3339(*to);
    if (!t) {
      return std::string{"to must be an RFC 3339 time such as 2026-11-25T17:34:54Z"};
    }
    p.to = *t;
  }
  p.from = p.to - 30 * 86400;
  if (from) {
    auto f = parse_rfc3339(*from);
    if (!f) {
      return std::string{"from must be an RFC 3339 time such as 2026-11-01T00:00:00Z"};
    }
    p.from = *f;
  }
  if (p.from > p.to) {
    return std::string{"from must not be after to"};
  }
  return p;
}

}  // namespace wachat::domain
