// Overloaded: a visitor made of lambdas, for std::visit.
//
//   std::visit(Overloaded{[](const A& a) { ... }, [](const B& b) { ... }}, v);
#pragma once

namespace umbra {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Spelled out for compilers without aggregate deduction (clang before 17).
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace umbra
