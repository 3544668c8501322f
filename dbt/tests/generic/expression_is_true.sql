{#- Rows where a boolean SQL expression is false (nulls count as false): each one fails the test. -#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(
    {% if column_name %}{{ column_name }} {% endif %}{{ expression }},
    false
)

{% endtest %}
