# Group the generated orders by customer, total them, keep the five largest.
group_by(.customer)
| map({customer: .[0].customer, orders: length, total: (map(.qty * .price) | add)})
| sort_by(-.total, .customer)
| .[:5]
