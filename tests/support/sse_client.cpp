#include "support/sse_client.hpp"

#include <cctype>
#include <stdexcept>

namespace wachat::test {
namespace {

using clock = std::chrono::steady_clock;

int millis_left(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string{} : s.substr(b, e - b + 1);
}

}  // namespace

sse_client::sse_client(std::uint16_t port, const std::string& target, const std::string& token,
                       const std::optional<std::string>& last_event_id,
                       std::chrono::milliseconds timeout) {
  conn_ = std::make_unique<raw_connection>(port);
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n";
  if (!token.empty()) {
    req += "Authorization: Bearer " + token + "\r\n";
  }
  if (last_event_id) {
    req += "Last-Event-ID: " + *last_event_id + "\r\n";
  }
  req += "\r\n";
  conn_->send(req);
  read_head(timeout);
}

sse_client::~sse_client() { close(); }

void sse_client::close() { conn_->close(); }

std::string sse_client::header(const std::string& name) const {
  auto it = headers_.find(name);
  return it == headers_.end() ? std::string{} : it->second;
}

bool sse_client::is_stream() const {
  return status_ == 200 && lower(header("content-type")).rfind("text/event-stream", 0) == 0;
}

void sse_client::read_head(std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  std::string head;
  std::size_t end = std::string::npos;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    auto bytes = conn_->receive(millis_left(deadline));
    if (!bytes) {
      throw std::runtime_error("sse: no response head within the timeout: [" + head + "]");
    }
    if (bytes->empty()) {
      throw std::runtime_error("sse: connection closed before the response head: [" + head + "]");
    }
    head += *bytes;
    if (head.size() > 64 * 1024) {
      throw std::runtime_error("sse: response head too large");
    }
  }
  std::string rest = head.substr(end + 4);
  head.resize(end);
  // Status line: HTTP/1.1 200 OK
  auto line_end = head.find("\r\n");
  auto status_line = head.substr(0, line_end);
  auto sp = status_line.find(' ');
  if (status_line.rfind("HTTP/1.", 0) != 0 || sp == std::string::npos) {
    throw std::runtime_error("sse: bad status line: " + status_line);
  }
  status_ = std::stoi(status_line.substr(sp + 1, 3));
  std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    auto eol = head.find("\r\n", pos);
    if (eol == std::string::npos) {
      eol = head.size();
    }
    auto line = head.substr(pos, eol - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      headers_[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    }
    pos = eol + 2;
  }
  chunked_ = lower(header("transfer-encoding")).find("chunked") != std::string::npos;
  feed(rest);
}

// De-chunks what it can (when the body is chunked) and parses complete lines.
void sse_client::feed(const std::string& bytes) {
  raw_ += bytes;
  if (!chunked_) {
    text_ += raw_;
    raw_.clear();
  } else {
    while (true) {
      auto eol = raw_.find("\r\n");
      if (eol == std::string::npos) {
        break;
      }
      auto size = std::stoul(raw_.substr(0, eol), nullptr, 16);
      if (size == 0) {
        ended_ = true;
        raw_.clear();
        break;
      }
      if (raw_.size() < eol + 2 + size + 2) {
        break;
      }
      text_ += raw_.substr(eol + 2, size);
      raw_.erase(0, eol + 2 + size + 2);
    }
  }
  if (status_ == 200) {
    parse_lines();
  }
}

void sse_client::parse_lines() {
  std::size_t start = 0;
  while (true) {
    auto eol = text_.find('\n', start);
    if (eol == std::string::npos) {
      break;
    }
    auto line = text_.substr(start, eol - start);
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    take_line(line);
    start = eol + 1;
  }
  text_.erase(0, start);
}

void sse_client::take_line(const std::string& line) {
  if (line.empty()) {
    // Dispatch (an event without data is dropped, as an EventSource does).
    if (has_data_) {
      sse_event ev;
      ev.id = id_;
      ev.event = event_.empty() ? "message" : event_;
      ev.data = data_;
      ready_.push_back(std::move(ev));
    }
    id_.clear();
    event_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line[0] == ':') {
    comments_.push_back(line.size() > 1 && line[1] == ' ' ? line.substr(2) : line.substr(1));
    return;
  }
  auto colon = line.find(':');
  std::string field = line.substr(0, colon);
  std::string value;
  if (colon != std::string::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') {
      value.erase(0, 1);
    }
  }
  if (field == "id") {
    id_ = value;
  } else if (field == "event") {
    event_ = value;
  } else if (field == "data") {
    if (has_data_) {
      data_ += '\n';
    }
    data_ += value;
    has_data_ = true;
  } else if (field == "retry") {
    retry_ms_ = std::stoi(value);
  }
}

bool sse_client::read_some(std::chrono::milliseconds timeout) {
  if (ended_) {
    return false;
  }
  auto bytes = conn_->receive(static_cast<int>(timeout.count()));
  if (!bytes) {
    return false;
  }
  if (bytes->empty()) {
    ended_ = true;
    return false;
  }
  feed(*bytes);
  return true;
}

std::string sse_client::body(std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  auto length = header("content-length");
  while (!ended_ && millis_left(deadline) > 0) {
    if (!length.empty() && text_.size() >= std::stoul(length)) {
      break;
    }
    read_some(std::chrono::milliseconds(millis_left(deadline)));
  }
  return text_;
}

std::optional<sse_event> sse_client::next(std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  while (ready_.empty()) {
    int left = millis_left(deadline);
    if (left <= 0 || ended_) {
      return std::nullopt;
    }
    read_some(std::chrono::milliseconds(left));
  }
  auto ev = std::move(ready_.front());
  ready_.pop_front();
  return ev;
}

sse_wait sse_client::wait_for(const std::function<bool(const sse_event&)>& match,
                              std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  sse_wait out;
  while (true) {
    auto ev = next(std::chrono::milliseconds(millis_left(deadline)));
    if (!ev) {
      return out;
    }
    out.events.push_back(*ev);
    if (match(out.events.back())) {
      out.found = true;
      return out;
    }
  }
}

std::vector<sse_event> sse_client::drain(std::chrono::milliseconds quiet) {
  std::vector<sse_event> out;
  while (auto ev = next(quiet)) {
    out.push_back(std::move(*ev));
  }
  return out;
}

}  // namespace wachat::test
