from pfgmbench.cli import main

main()
