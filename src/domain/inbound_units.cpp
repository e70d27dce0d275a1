#include "domain/inbound_units.hpp"

#include <algorithm>
#include <cctype>

namespace wachat::domain {

std::vector<inbound_unit> split_delivery(const webhook_delivery& delivery) {
  std::vector<inbound_unit> units;
  for (const auto& change : delivery.changes) {
    for (const auto& m : change.messages) {
      inbound_unit u;
      u.what = inbound_unit::kind::message;
      u.phone_number_id = change.phone_number_id;
      u.visitor_wa_id = m.from.empty() ? m.from_user_id : m.from;
      u.profile_name = std::string{profile_name_for(change, m.from, m.from_user_id)};
      u.message = m;
      units.push_back(std::move(u));
    }
    for (const auto& s : change.statuses) {
      inbound_unit u;
      u.what = inbound_unit::kind::status;
      u.phone_number_id = change.phone_number_id;
      u.visitor_wa_id = s.recipient_id.empty() ? s.recipient_user_id : s.recipient_id;
      u.status = s;
      units.push_back(std::move(u));
    }
    for (const auto& p : change.preferences) {
      inbound_unit u;
      u.what = inbound_unit::kind::preference;
      u.phone_number_id = change.phone_number_id;
      u.visitor_wa_id = p.wa_id.empty() ? p.user_id : p.wa_id;
      u.preference = p;
      units.push_back(std::move(u));
    }
  }
  return units;
}

std::vector<std::string> template_changes(const webhook_delivery& delivery) {
  std::vector<std::string> wabas;
  for (const auto& change : delivery.changes) {
    if ((change.field == "message_template_status_update" || change.field == "message_template_quality_update" ||
         change.field == "template_category_update") &&
        !change.entry_id.empty() &&
        std::find(wabas.begin(), wabas.end(), change.entry_id) == wabas.end()) {
      wabas.push_back(change.entry_id);
    }
  }
  return wabas;
}

std::optional<bool> preference_opt_out(const user_preference& p) {
  if (p.category != "marketing_messages") {
    return std::nullopt;
  }
  if (p.value == "stop") {
    return true;
  }
  if (p.value == "resume") {
    return false;
  }
  return std::nullopt;
}

namespace {

std::string folded(std::string_view s) {
  auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) {
    return {};
  }
  auto end = s.find_last_not_of(" \t\r\n");
  std::string out{s.substr(begin, end - begin + 1)};
  for (auto& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

bool listed(const std::string& word, const std::vector<std::string>& list) {
  for (const auto& k : list) {
    if (folded(k) == word) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<bool> keyword_opt_out(std::string_view text, const std::vector<std::string>& opt_out,
                                    const std::vector<std::string>& opt_in) {
  if (text.size() > 64) {
    return std::nullopt;  // a keyword is a word, not a message that mentions one
  }
  auto word = folded(text);
  if (word.empty()) {
    return std::nullopt;
  }
  if (listed(word, opt_out)) {
    return true;
  }
  if (listed(word, opt_in)) {
    return false;
  }
  return std::nullopt;
}

std::vector<webhook_error> delivery_errors(const webhook_delivery& delivery) {
  std::vector<webhook_error> out;
  for (const auto& change : delivery.changes) {
    out.insert(out.end(), change.errors.begin(), change.errors.end());
  }
  return out;
}

std::optional<std::string> refusal_reason(const webhook_delivery& delivery,
                                          std::size_t max_items) {
  if (delivery.items_over_limit == 0) {
    return std::nullopt;
  }
  return "more than " + std::to_string(max_items) + " items in one delivery (" +
         std::to_string(delivery.items_over_limit) +
         " over the limit); not processed, the body is kept";
}

bool closes_window(const message_status& status) {
  if (status.status != "failed") {
    return false;
  }
  for (const auto& e : status.errors) {
    if (e.code == 131047) {
      return true;
    }
  }
  return false;
}

void event_progress::record(const unit_outcome& o) {
  ++answered;
  if (o.unroutable) {
    unroutable_ids.insert(*o.unroutable);
    return;
  }
  if (o.stored) {
    return;
  }
  if (o.retryable) {
    ++retryable_failures;
  } else {
    errors.push_back(o.error);
  }
}

event_verdict event_progress::verdict() const {
  // A passing failure (database gone mid-way) wins: the whole row is tried again, and what was
  // stored already is recognised by wamid and changes nothing the second time.
  if (retryable_failures > 0) {
    return {"pending", "will retry: a unit could not be stored for now"};
  }
  if (!errors.empty()) {
    return {"failed", std::to_string(errors.size()) + " unit(s) failed; first: " + errors.front()};
  }
  if (!unroutable_ids.empty()) {
    std::string ids;
    for (const auto& id : unroutable_ids) {
      ids += (ids.empty() ? "" : ", ") + id;
    }
    return {"unroutable", "no site has phone_number_id " + ids};
  }
  // A processed row still says what Meta reported and what was skipped, for the operator.
  std::string notes;
  for (const auto& e : meta_errors) {
    notes += (notes.empty() ? "Meta reported: " : "; ") + std::to_string(e.code) + " " +
             (e.title.empty() ? e.message : e.title);
    if (!e.details.empty()) {
      notes += " (" + e.details + ")";
    }
  }
  if (!problems.empty()) {
    notes += (notes.empty() ? "" : "; ") + std::to_string(problems.size()) +
             " item(s) skipped; first: " + problems.front().where + ": " + problems.front().reason;
  }
  if (notes.empty()) {
    return {"processed", std::nullopt};
  }
  // Parts of the delivery that could not be used are not hidden behind `processed`.
  return {problems.empty() ? "processed" : "partial", notes};
}

}  // namespace wachat::domain
