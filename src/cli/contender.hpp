#pragma once
// What `run` holds: the lock, a permit of a semaphore (run --slots N), or a read-write lock in one mode (run --read,
// run --write). The supervisor speaks to any of them through this: the operations it uses, and the holders to name
// when it gives up. The three share their operations' names (the library's wrappers forward to one lock_manager),
// so each call is one std::visit, not one copy per kind.

#include <clusterlock/lock_manager.hpp>
#include <clusterlock/rw_lock.hpp>
#include <clusterlock/semaphore.hpp>

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace clusterlock::cli {

class contender {
 public:
  /// `slots` non-zero: a semaphore of `slots` permits; else `access` given: the read-write lock `opts.name` in that
  /// mode; else the lock `opts.name`.
  contender(boost::asio::io_context& io, const options& opts, std::size_t slots,
            std::optional<rw_lock::mode> access = std::nullopt)
      : kind_(make(io, opts, slots, access)) {}

  std::size_t slots() const noexcept {
    const auto* sem = std::get_if<std::unique_ptr<semaphore>>(&kind_);
    return sem ? (*sem)->slots() : 0;
  }
  /// The read-write lock's mode; none for a lock or a semaphore.
  std::optional<rw_lock::mode> access() const noexcept {
    const auto* rw = std::get_if<std::unique_ptr<rw_lock>>(&kind_);
    return rw ? std::optional((*rw)->access()) : std::nullopt;
  }
  const std::string& identity() const noexcept {
    return std::visit([](const auto& c) -> const std::string& { return c->identity(); }, kind_);
  }
  std::string key() const {
    return std::visit([](const auto& c) { return c->key(); }, kind_);
  }
  /// have_lock(), or have_permit().
  bool holds() const noexcept {
    return std::visit([](const auto& c) { return has(*c); }, kind_);
  }
  event_subscription subscribe() {
    return std::visit([](auto& c) { return c->subscribe(); }, kind_);
  }
  /// The lock's holder, the semaphore's permit holders, or the read-write lock's holders, as last seen.
  std::vector<lock_entry> holders() const {
    return std::visit([](const auto& c) { return holders_of(*c); }, kind_);
  }

  template <class Handler>
  void async_acquire(Handler&& h) {
    std::visit([&](auto& c) { c->async_acquire(std::forward<Handler>(h)); }, kind_);
  }
  template <class Handler>
  void async_try_acquire(Handler&& h) {
    std::visit([&](auto& c) { c->async_try_acquire(std::forward<Handler>(h)); }, kind_);
  }
  template <class Handler>
  void async_shutdown(Handler&& h) {
    std::visit([&](auto& c) { c->async_shutdown(std::forward<Handler>(h)); }, kind_);
  }

 private:
  using kind = std::variant<std::unique_ptr<lock_manager>, std::unique_ptr<semaphore>, std::unique_ptr<rw_lock>>;

  static kind make(boost::asio::io_context& io, const options& opts, std::size_t slots,
                   std::optional<rw_lock::mode> access) {
    if (slots != 0) return std::make_unique<semaphore>(io.get_executor(), opts, slots);
    if (access) return std::make_unique<rw_lock>(io.get_executor(), opts, *access);
    return std::make_unique<lock_manager>(io.get_executor(), opts);
  }

  static bool has(const lock_manager& l) noexcept { return l.have_lock(); }
  static bool has(const rw_lock& l) noexcept { return l.have_lock(); }
  static bool has(const semaphore& s) noexcept { return s.have_permit(); }
  static std::vector<lock_entry> holders_of(const lock_manager& l) {
    std::vector<lock_entry> out;
    if (auto h = l.holder()) out.push_back(std::move(*h));
    return out;
  }
  template <class Many>
  static std::vector<lock_entry> holders_of(const Many& m) {
    return m.holders();
  }

  kind kind_;
};

}  // namespace clusterlock::cli
