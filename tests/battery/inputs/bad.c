/* Does not compile: gcc must print the same diagnostics and exit 1. */
struct point {
  int x, y;
};

int main(void) {
  struct point p = {1, 2};
  return p.z + undeclared_variable;
}
